// Command incluster is run by the local node's tests as a container: it
// builds an in-cluster client through pkg/pathmap, says who it is and lists
// the ConfigMaps of its namespace, which its ServiceAccount may do, and
// tries the Secrets, which it may not.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubestash.dev/kubestash/pkg/pathmap"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "incluster: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pathmap.InClusterConfig()
	if err != nil {
		return err
	}
	ns, err := pathmap.InClusterNamespace()
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	who, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("who am I: %w", err)
	}
	fmt.Printf("user=%s\n", who.Status.UserInfo.Username)
	cms, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list configmaps: %w", err)
	}
	for _, cm := range cms.Items {
		fmt.Printf("configmap=%s\n", cm.Name)
	}
	_, err = c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	fmt.Printf("secrets forbidden=%t\n", apierrors.IsForbidden(err))
	return nil
}
