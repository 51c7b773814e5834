package lookup

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	typedrbacv1 "k8s.io/client-go/kubernetes/typed/rbac/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
)

// CachedKube is kube whose Gets of ServiceAccounts, Roles and RoleBindings
// are answered from ours, the informers of the objects labelled as made by
// the controller (the accounts and grants it ensures on every reconcile),
// and from the API when the cache does not have the object. Everything
// else, writes included, goes to kube. A Get returns a copy. Using it
// registers the informers, so call it before ours starts.
func CachedKube(kube kubernetes.Interface, ours kubeinformers.SharedInformerFactory) kubernetes.Interface {
	return cachedKube{
		Interface: kube,
		core:      cachedCore{CoreV1Interface: kube.CoreV1(), accounts: ours.Core().V1().ServiceAccounts().Lister()},
		rbac: cachedRBAC{RbacV1Interface: kube.RbacV1(),
			roles: ours.Rbac().V1().Roles().Lister(), bindings: ours.Rbac().V1().RoleBindings().Lister()},
	}
}

type cachedKube struct {
	kubernetes.Interface
	core cachedCore
	rbac cachedRBAC
}

func (c cachedKube) CoreV1() typedcorev1.CoreV1Interface { return c.core }
func (c cachedKube) RbacV1() typedrbacv1.RbacV1Interface { return c.rbac }

type cachedCore struct {
	typedcorev1.CoreV1Interface
	accounts corelisters.ServiceAccountLister
}

func (c cachedCore) ServiceAccounts(ns string) typedcorev1.ServiceAccountInterface {
	return cachedAccounts{ServiceAccountInterface: c.CoreV1Interface.ServiceAccounts(ns), lister: c.accounts.ServiceAccounts(ns)}
}

type cachedAccounts struct {
	typedcorev1.ServiceAccountInterface
	lister corelisters.ServiceAccountNamespaceLister
}

func (c cachedAccounts) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ServiceAccount, error) {
	return getCopy(ctx, name, opts, c.lister.Get, c.ServiceAccountInterface.Get, (*corev1.ServiceAccount).DeepCopy)
}

type cachedRBAC struct {
	typedrbacv1.RbacV1Interface
	roles    rbaclisters.RoleLister
	bindings rbaclisters.RoleBindingLister
}

func (c cachedRBAC) Roles(ns string) typedrbacv1.RoleInterface {
	return cachedRoles{RoleInterface: c.RbacV1Interface.Roles(ns), lister: c.roles.Roles(ns)}
}

func (c cachedRBAC) RoleBindings(ns string) typedrbacv1.RoleBindingInterface {
	return cachedBindings{RoleBindingInterface: c.RbacV1Interface.RoleBindings(ns), lister: c.bindings.RoleBindings(ns)}
}

type cachedRoles struct {
	typedrbacv1.RoleInterface
	lister rbaclisters.RoleNamespaceLister
}

func (c cachedRoles) Get(ctx context.Context, name string, opts metav1.GetOptions) (*rbacv1.Role, error) {
	return getCopy(ctx, name, opts, c.lister.Get, c.RoleInterface.Get, (*rbacv1.Role).DeepCopy)
}

type cachedBindings struct {
	typedrbacv1.RoleBindingInterface
	lister rbaclisters.RoleBindingNamespaceLister
}

func (c cachedBindings) Get(ctx context.Context, name string, opts metav1.GetOptions) (*rbacv1.RoleBinding, error) {
	return getCopy(ctx, name, opts, c.lister.Get, c.RoleBindingInterface.Get, (*rbacv1.RoleBinding).DeepCopy)
}

// getCopy is a copy of the cached object, else the API's answer. With
// ResourceVersion "0" (any version will do, as the API server reads it from
// its watch cache) a cache miss is the answer: a caller that only acts on
// what exists asks so, and a miss costs no request.
func getCopy[T any](ctx context.Context, name string, opts metav1.GetOptions, cached func(string) (T, error),
	live func(context.Context, string, metav1.GetOptions) (T, error), deepCopy func(T) T) (T, error) {
	obj, err := cached(name)
	switch {
	case err == nil:
		return deepCopy(obj), nil
	case apierrors.IsNotFound(err) && opts.ResourceVersion == "0":
		return obj, err
	case apierrors.IsNotFound(err):
		return live(ctx, name, opts)
	default:
		return obj, err
	}
}
